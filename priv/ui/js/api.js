// Requests to the UI's JSON API (ElixirScope.UI.API). URLs are relative, so the page
// works at the root of its own server and under a Phoenix mount (/scope/).
import { useEffect, useState } from './lib.js';

let csrf = null;

// In a cluster (ElixirScope.Cluster) the node whose recording the page shows: every
// request names it (node=), the server forwards it there. Kept for the tab's session.
const NODE_KEY = 'elixir_scope.node';
let node = sessionStorage.getItem(NODE_KEY) || null;

export function selectedNode() { return node; }

export function selectNode(name) {
  if (name) sessionStorage.setItem(NODE_KEY, name); else sessionStorage.removeItem(NODE_KEY);
  window.location.reload();
}

export function setCsrf(token) { csrf = token; }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// "processes", {sort: "memory"} -> "api/processes?sort=memory" (empty values left out).
export function apiUrl(path, params = {}) {
  const q = Object.entries(node ? { ...params, node } : params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
  return `api/${path}${q ? `?${q}` : ''}`;
}

async function answer(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body.error || response.statusText);
  return body;
}

export async function get(path, params, { signal } = {}) {
  return answer(await fetch(apiUrl(path, params), { signal, credentials: 'same-origin' }));
}

// The tracing actions: same-origin POSTs with the CSRF token /api/meta gave.
export async function post(path, body) {
  return answer(await fetch(apiUrl(path), {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: JSON.stringify(body),
  }));
}

// {data, error, loading} of a GET, refetched when `key` (a string) changes; a newer
// request aborts the older one.
export function useApi(path, params, key = JSON.stringify([path, params])) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  useEffect(() => {
    if (!path) { setState({ data: null, error: null, loading: false }); return undefined; }
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true, error: null }));
    get(path, params, { signal: ctl.signal })
      .then((data) => setState({ data, error: null, loading: false }))
      .catch((error) => { if (error.name !== 'AbortError') setState({ data: null, error, loading: false }); });
    return () => ctl.abort();
  }, [key]);
  return state;
}
