// Team answers, live: the package straight from node_modules, bundled by webpack.
import { connect } from 'tidings';

const state = document.getElementById('state');
const list = document.getElementById('answers');

// No init step: the wasm loads on first use.
const answers = connect('/api/team-answers/sse/');
answers.onState((s) => { state.textContent = s; state.dataset.state = s; });
answers.on('create', (msg, info) => {
  const li = document.createElement('li');
  li.dataset.answer = String(msg.data.id);
  li.textContent = `#${info.id} ${msg.data.qa}`;
  list.prepend(li);
});
answers.on('delete', (msg) => {
  for (const id of msg.data) list.querySelector(`li[data-answer="${id}"]`)?.remove();
});
