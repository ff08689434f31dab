// The API server (tidings-server --dev) that /api/* is proxied to.
const api = process.env.TIDINGS_API ?? 'http://127.0.0.1:8000';

/** @type {import('next').NextConfig} */
const nextConfig = {
  // SSE must not be buffered or compressed by the dev/prod proxy.
  compress: false,
  // The seed URLs end in '/' (/api/team-answers/sse/): keep them as they are.
  skipTrailingSlashRedirect: true,
  async rewrites() {
    return [{ source: '/api/:path*', destination: `${api}/api/:path*` }];
  },
};
export default nextConfig;
