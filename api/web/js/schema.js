// Checks a value against the render JSON Schema (GET /api/render/schema) as the user
// types, and names the first failing path in the API's dotted form
// (`scenes.0.elements.1.color`). It covers the keywords that schema uses; rules that
// relate two fields (listed in its x-phantomflow-cross-field-rules) are the server's,
// and the dry run that follows a valid check reports them.

let cached = null;

export function loadSchema(api) {
  if (!cached) {
    cached = api.get("/api/render/schema").catch((error) => {
      cached = null;
      throw error;
    });
  }
  return cached;
}

export function jsonType(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function hasType(type, value) {
  const actual = jsonType(value);
  if (type === "number") return actual === "number" || actual === "integer";
  return type === actual;
}

const join = (path, key) => (path === "" ? String(key) : `${path}.${key}`);

function formatMessage(pattern) {
  if (pattern.startsWith("^#")) return "Expected a hex colour like #RRGGBB";
  if (pattern.includes("https?")) return "Expected an absolute http(s) URL";
  return "Not in the expected format";
}

export class SchemaChecker {
  constructor(schema) {
    this.schema = schema;
    this.patterns = new Map();
  }

  resolve(node) {
    while (node && node.$ref) {
      const parts = node.$ref.replace(/^#\//, "").split("/");
      node = parts.reduce((at, part) => at[part], this.schema);
    }
    return node;
  }

  // The first error as {path, message}, or null when the value is valid. With
  // `excuse`, a string value it accepts is not checked at all (a template's
  // `{{placeholder}}`, checked when the template is rendered, as the API does).
  check(value, { excuse = null } = {}) {
    this.excuse = excuse;
    return this.visit(this.schema, value, "");
  }

  visit(node, value, path) {
    node = this.resolve(node);
    if (!node || typeof node !== "object") return null;
    if (this.excuse && typeof value === "string" && this.excuse(value)) return null;
    const branches = node.anyOf || node.oneOf;
    if (branches) {
      const error = this.branch(branches, value, path);
      if (error) return error;
    }
    if (node.type !== undefined) {
      const types = Array.isArray(node.type) ? node.type : [node.type];
      if (!types.some((type) => hasType(type, value))) {
        return { path, message: `Expected ${types.join(" or ")}, received ${jsonType(value)}` };
      }
    }
    if (node.enum && !node.enum.includes(value)) {
      return { path, message: `Expected one of: ${node.enum.join(", ")}` };
    }
    if (typeof value === "number") return this.number(node, value, path);
    if (typeof value === "string") return this.string(node, value, path);
    if (Array.isArray(value)) return this.array(node, value, path);
    if (value && typeof value === "object") return this.object(node, value, path);
    return null;
  }

  branch(branches, value, path) {
    const resolved = branches.map((b) => this.resolve(b));
    const errors = resolved.map((b) => this.visit(b, value, path));
    if (errors.some((error) => error === null)) return null;
    // The branches of the value's own JSON type; among objects, the one whose `type`
    // property admits the value's `type` (the element kinds).
    let fitting = resolved
      .map((b, i) => ({ b, error: errors[i] }))
      .filter(({ b }) => b.type === undefined || [].concat(b.type).some((t) => hasType(t, value)));
    if (fitting.length > 1 && value && typeof value === "object" && !Array.isArray(value)) {
      const kinds = fitting.map(({ b }) => b.properties?.type?.enum || []);
      const byKind = fitting.filter((_, i) => kinds[i].includes(value.type));
      if (byKind.length === 0 && kinds.every((k) => k.length)) {
        return { path: join(path, "type"), message: `Expected one of: ${kinds.flat().join(", ")}` };
      }
      fitting = byKind.length ? byKind : fitting;
    }
    if (fitting.length >= 1) {
      return fitting
        .map(({ error }) => error)
        .reduce((deepest, error) => (error.path.length > deepest.path.length ? error : deepest));
    }
    const types = resolved.flatMap((b) => [].concat(b.type || "object")).filter((t) => t !== "null");
    return { path, message: `Expected ${[...new Set(types)].join(" or ")}, received ${jsonType(value)}` };
  }

  number(node, value, path) {
    if (!Number.isFinite(value)) return { path, message: "Expected a finite number" };
    if (node.minimum !== undefined && value < node.minimum) {
      return { path, message: `Must be greater than or equal to ${node.minimum}` };
    }
    if (node.exclusiveMinimum !== undefined && value <= node.exclusiveMinimum) {
      return { path, message: `Must be greater than ${node.exclusiveMinimum}` };
    }
    if (node.maximum !== undefined && value > node.maximum) {
      return { path, message: `Must be less than or equal to ${node.maximum}` };
    }
    if (node.multipleOf !== undefined && Math.abs(value / node.multipleOf - Math.round(value / node.multipleOf)) > 1e-9) {
      return { path, message: node.multipleOf === 2 ? "Must be even" : `Must be a multiple of ${node.multipleOf}` };
    }
    return null;
  }

  string(node, value, path) {
    const length = [...value].length;
    if (node.minLength !== undefined && length < node.minLength) {
      return { path, message: node.minLength === 1 ? "Must not be empty" : `Must be at least ${node.minLength} characters` };
    }
    if (node.maxLength !== undefined && length > node.maxLength) {
      return { path, message: `Must be at most ${node.maxLength} characters` };
    }
    if (node.pattern !== undefined) {
      let regex = this.patterns.get(node.pattern);
      if (!regex) {
        regex = new RegExp(node.pattern, "u");
        this.patterns.set(node.pattern, regex);
      }
      if (!regex.test(value)) return { path, message: formatMessage(node.pattern) };
    }
    return null;
  }

  array(node, value, path) {
    if (node.minItems !== undefined && value.length < node.minItems) {
      return { path, message: `Must have at least ${node.minItems} item${node.minItems === 1 ? "" : "s"}` };
    }
    if (node.maxItems !== undefined && value.length > node.maxItems) {
      return { path, message: node.maxItems === 0 ? "Must be empty" : `Must have at most ${node.maxItems} items` };
    }
    if (node.items) {
      for (let i = 0; i < value.length; i += 1) {
        const error = this.visit(node.items, value[i], join(path, i));
        if (error) return error;
      }
    }
    return null;
  }

  object(node, value, path) {
    const properties = node.properties || {};
    const required = node.required || [];
    for (const [name, child] of Object.entries(properties)) {
      if (!(name in value)) {
        if (required.includes(name)) return { path: join(path, name), message: "Required field is missing" };
        continue;
      }
      const error = this.visit(child, value[name], join(path, name));
      if (error) return error;
    }
    if (node.additionalProperties === false) {
      const unknown = Object.keys(value).find((name) => !(name in properties));
      if (unknown !== undefined) return { path: join(path, unknown), message: "Unknown field." };
    }
    return null;
  }

  // Property names whose values are numbers or booleans anywhere in the schema: a
  // template variable that stands alone in such a field takes that type.
  typedFields() {
    const fields = new Map();
    const walk = (node) => {
      if (!node || typeof node !== "object") return;
      for (const [name, child] of Object.entries(node.properties || {})) {
        const types = [].concat(this.resolve(child).type || []);
        if (types.includes("number") || types.includes("integer")) fields.set(name, "number");
        else if (types.includes("boolean")) fields.set(name, "boolean");
      }
    };
    walk(this.schema);
    for (const definition of Object.values(this.schema.$defs || {})) walk(definition);
    return fields;
  }
}
