// Every view at its own URL: the hash holds the view and its parameters
// (#/states/<0.123.0>?id=42), so a link can be shared or reloaded, and the server
// serves one page whatever the view.
import { useEffect, useState } from './lib.js';

export function parse(hash = location.hash) {
  const [path, query = ''] = hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = Object.fromEntries(new URLSearchParams(query));
  return { view: parts[0] || 'processes', arg: parts[1] || null, params };
}

export function href(view, arg = null, params = {}) {
  const q = new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ''),
  ).toString();
  return `#/${view}${arg ? `/${encodeURIComponent(arg)}` : ''}${q ? `?${q}` : ''}`;
}

export function go(view, arg, params, { replace = false } = {}) {
  const target = href(view, arg, params);
  if (replace) history.replaceState(null, '', target); else location.hash = target;
  if (replace) window.dispatchEvent(new HashChangeEvent('hashchange'));
}

export function useRoute() {
  const [route, setRoute] = useState(parse());
  useEffect(() => {
    const on = () => setRoute(parse());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}
