// A JSON editor for movie scripts: a plain textarea (keyboard and screen-reader
// friendly, Tab leaves it), checked against the render schema on every keystroke.

import { html } from "../vendor/lit-html/lit-html.js";

export class JsonEditor {
  // `check(value)` returns {path, message} or null; `onValid(value)` runs after each
  // edit that leaves valid JSON passing the check.
  constructor({ id, label, text = "", check = () => null, onValid = () => {}, refresh }) {
    this.id = id;
    this.label = label;
    this.check = check;
    this.onValid = onValid;
    this.refresh = refresh;
    this.setText(text, { quiet: true });
  }

  setText(text, { quiet = false } = {}) {
    this.text = text;
    this.value = undefined;
    this.problem = null;
    try {
      this.value = JSON.parse(text);
    } catch (error) {
      this.problem = { kind: "json", message: `Not valid JSON: ${error.message}` };
    }
    if (!this.problem) {
      const failed = this.check(this.value);
      if (failed) this.problem = { kind: "schema", ...failed };
    }
    if (!quiet) {
      if (!this.problem) this.onValid(this.value);
      this.refresh();
    }
  }

  // Run the check again (the schema arrived, or the check changed).
  recheck() {
    this.setText(this.text);
  }

  get valid() {
    return this.problem === null;
  }

  format() {
    if (this.value !== undefined) this.setText(JSON.stringify(this.value, null, 2));
  }

  view() {
    const problem = this.problem;
    const statusId = `${this.id}-status`;
    return html`<div class="editor">
      <div class="editor-head">
        <label for=${this.id}>${this.label}</label>
        <button type="button" class="small" ?disabled=${this.value === undefined} @click=${() => this.format()}>
          Format
        </button>
      </div>
      <textarea
        id=${this.id}
        class="code"
        spellcheck="false"
        autocapitalize="off"
        autocomplete="off"
        rows="18"
        aria-describedby=${statusId}
        aria-invalid=${problem ? "true" : "false"}
        .value=${this.text}
        @input=${(event) => this.setText(event.target.value)}
      ></textarea>
      <p id=${statusId} class="check ${problem ? "invalid" : "valid"}" role="status">
        ${problem === null
          ? "Valid against the render schema."
          : problem.kind === "json"
            ? problem.message
            : html`<span class="sr-only">Schema error </span>At <code class="error-path">${problem.path === "" ? "(the whole script)" : problem.path}</code>:
                ${problem.message}`}
      </p>
    </div>`;
  }
}
