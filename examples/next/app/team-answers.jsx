'use client';
// The live panel. 'use client' keeps the SDK out of the server render: the
// hook only touches the browser inside useEffect.
import { useCallback, useEffect, useState } from 'react';
import { useTidings, useTidingsState } from 'tidings/react';

// Empty: same origin through the /api rewrite; or an absolute API origin baked in at build time.
const base = process.env.NEXT_PUBLIC_TIDINGS_API ?? '';
const streamUrl = `${base}/api/team-answers/sse/`;

export function TeamAnswers() {
  const [answers, setAnswers] = useState([]);
  const state = useTidingsState(streamUrl);

  const refetch = useCallback(async () => {
    const res = await fetch(`${base}/api/team-answers/`);
    if (res.ok) setAnswers(await res.json());
  }, []);
  useEffect(() => { refetch(); }, [refetch]);

  useTidings(streamUrl, 'create', (msg) => {
    setAnswers((prev) => (prev.some((a) => a.id === msg.data.id) ? prev : [...prev, msg.data]));
  });
  useTidings(streamUrl, 'delete', (msg) => {
    const gone = new Set(msg.data);
    setAnswers((prev) => prev.filter((a) => !gone.has(a.id)));
  });
  // The server lost track of where we were (id too old): refetch the list.
  useTidings(streamUrl, 'reset', refetch);

  return (
    <section>
      <h2>Team answers <small data-testid="state">{state}</small></h2>
      <ul data-testid="answers">
        {answers.map((a) => <li key={a.id}>{a.qa}</li>)}
      </ul>
    </section>
  );
}
