// The UI's one door to its vendored libraries (priv/ui/vendor, see MANIFEST.json):
// Preact, its hooks, and htm for templates without a build step.
import { h, render, Fragment } from '../vendor/preact.mjs';
import {
  useState, useEffect, useLayoutEffect, useRef, useMemo, useCallback, useReducer,
} from '../vendor/hooks.mjs';
import htm from '../vendor/htm.mjs';

export const html = htm.bind(h);
export {
  h, render, Fragment, useState, useEffect, useLayoutEffect, useRef, useMemo, useCallback,
  useReducer,
};
