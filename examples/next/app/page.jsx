// A server component: it renders on the server and must not touch `window`;
// the live part is the client component below.
import { TeamAnswers } from './team-answers.jsx';

export default function Page() {
  return (
    <main>
      <h1>Tidings in Next.js</h1>
      <p>Rendered on the server at {new Date().toISOString()}; live updates below.</p>
      <TeamAnswers />
    </main>
  );
}
