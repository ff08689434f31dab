// Firefox ESR and WebKit through selenium-webdriver (Playwright cannot drive
// Debian's builds of them). Each session gets its own driver process on a free
// loopback port, started here and stopped by `quit()`; selenium-manager never
// runs (the driver URL is given), so nothing is downloaded.
import { spawn, execFileSync } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { Builder } from 'selenium-webdriver';
import { freePort } from './examples.mjs';

/** The MiniBrowser of Debian's webkit2gtk-driver, the browser WebKitWebDriver automates. */
const MINIBROWSER = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

function which(cmd) {
  try { return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim(); } catch { return ''; }
}

/** How to start each engine's driver and what to ask it for. */
export const ENGINES = {
  firefox: {
    driver: () => process.env.GECKODRIVER || which('geckodriver'),
    args: (port) => ['--host', '127.0.0.1', '--port', String(port)],
    capabilities: () => ({
      browserName: 'firefox',
      'moz:firefoxOptions': {
        binary: process.env.FIREFOX_BIN || which('firefox-esr') || which('firefox'),
        args: ['-headless'],
        // Loopback only: no update checks, telemetry or remote settings.
        prefs: {
          'app.update.enabled': false, 'datareporting.policy.dataSubmissionEnabled': false,
          'toolkit.telemetry.enabled': false, 'network.captive-portal-service.enabled': false,
          'browser.safebrowsing.malware.enabled': false, 'browser.safebrowsing.phishing.enabled': false,
        },
      },
    }),
  },
  webkit: {
    driver: () => process.env.WEBKITWEBDRIVER || which('WebKitWebDriver'),
    args: (port) => [`--port=${port}`],
    capabilities: () => ({
      browserName: 'MiniBrowser',
      'webkitgtk:browserOptions': { binary: process.env.MINIBROWSER_BIN || MINIBROWSER, args: ['--automation'] },
    }),
  },
};

function waitPort(port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = tcpConnect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(); });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`driver did not listen on ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

/**
 * Starts `engine`'s driver and a browser session.
 * @param {'firefox'|'webkit'} engine
 * @returns {Promise<{driver: import('selenium-webdriver').WebDriver, quit: () => Promise<void>, log: () => string}>}
 */
export async function launchEngine(engine) {
  const spec = ENGINES[engine];
  if (!spec) throw new Error(`unknown engine ${engine} (firefox | webkit)`);
  const bin = spec.driver();
  if (!bin) throw new Error(`no WebDriver for ${engine} on PATH: run scripts/setup.sh`);
  const port = await freePort();
  const proc = spawn(bin, spec.args(port), { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (c) => { log += c; });
  proc.stderr.on('data', (c) => { log += c; });
  const exited = new Promise((r) => proc.on('exit', r));
  const stopDriver = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  let driver;
  try {
    await waitPort(port, 15_000);
    driver = await new Builder()
      .usingServer(`http://127.0.0.1:${port}`)
      .withCapabilities(spec.capabilities())
      .build();
    await driver.manage().setTimeouts({ script: 20_000, pageLoad: 30_000 });
  } catch (e) {
    await stopDriver();
    throw new Error(`${engine} session failed: ${e.message}\n${log}`);
  }
  return {
    driver,
    log: () => log,
    quit: async () => {
      await Promise.race([driver.quit().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
      await stopDriver();
    },
  };
}
