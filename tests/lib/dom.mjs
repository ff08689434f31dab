// A jsdom document as the global one, for React Testing Library under node:test.
// Import it before react-dom or @testing-library/react.
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>', { url: 'http://127.0.0.1/' });
const { window } = dom;
for (const name of ['window', 'document', 'navigator', 'HTMLElement', 'Node', 'Event', 'MutationObserver', 'getComputedStyle']) {
  if (!(name in globalThis)) {
    Object.defineProperty(globalThis, name, { value: name === 'window' ? window : window[name], configurable: true, writable: true });
  }
}
// Tells React that updates are wrapped in act() (Testing Library does it).
globalThis.IS_REACT_ACT_ENVIRONMENT = true;

/** Closes the jsdom window (its timers) when the test file ends. */
export function closeDom() {
  window.close();
}
