import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.jsx';

// StrictMode mounts every effect twice in development: the hook still opens one connection.
createRoot(document.getElementById('root')).render(<StrictMode><App /></StrictMode>);
