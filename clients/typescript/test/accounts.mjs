// The accounts tests/test_sdk_typescript.py opened for each test file: Node runs the
// files in processes of their own, side by side, so each file has accounts of its own
// (PHANTOMFLOW_TEST_ACCOUNTS: {"<file>.test.mjs": [{api_key, test_api_key}, ...]}).

import assert from "node:assert/strict";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";

export const URL_ = process.env.PHANTOMFLOW_URL;

export function accountsOf(moduleUrl) {
  const file = basename(fileURLToPath(moduleUrl));
  const accounts = JSON.parse(process.env.PHANTOMFLOW_TEST_ACCOUNTS ?? "{}")[file] ?? [];
  if (!URL_ || accounts.length === 0) throw new Error(`run ${file} through tests/test_sdk_typescript.py`);
  return accounts;
}

/** A function that hands out the next of `accounts` at each call, one per test. */
export function taker(accounts) {
  let next = 0;
  return () => {
    const taken = accounts[next++];
    assert.ok(taken, "not enough accounts for the tests");
    return taken;
  };
}

/** The smallest script worth rendering: 320x240, 1 s, low quality. */
export const TINY = {
  width: 320,
  height: 240,
  fps: 15,
  quality: "low",
  scenes: [{ duration: 1, background: "#FF0000", elements: [{ type: "text", text: "Hello", font_size: 24 }] }],
};
