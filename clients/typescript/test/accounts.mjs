// The accounts tests/test_sdk_typescript.py opened for each test file: Node runs the
// files in processes of their own, side by side, so each file has accounts of its own
// (PHANTOMFLOW_TEST_ACCOUNTS: {"<file>.test.mjs": [{api_key, test_api_key}, ...]}).

import { basename } from "node:path";
import { fileURLToPath } from "node:url";

export const URL_ = process.env.PHANTOMFLOW_URL;

export function accountsOf(moduleUrl) {
  const file = basename(fileURLToPath(moduleUrl));
  const accounts = JSON.parse(process.env.PHANTOMFLOW_TEST_ACCOUNTS ?? "{}")[file] ?? [];
  if (!URL_ || accounts.length === 0) throw new Error(`run ${file} through tests/test_sdk_typescript.py`);
  return accounts;
}
