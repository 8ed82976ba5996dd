// Every page of the dashboard, in navigation order. A page is one module; adding one
// is adding its module and a line here.
//
// A page module's default export: {path, title, nav?, navPath?, public?, create(ctx,
// params, query)} where create returns {view(), destroy?(), title?()}.

import integrations from "./integrations.js";
import job from "./job.js";
import jobs from "./jobs.js";
import keys from "./keys.js";
import assets from "./assets.js";
import credits from "./credits.js";
import newRender from "./render.js";
import signin from "./signin.js";
import template from "./template.js";
import templates from "./templates.js";
import webhooks from "./webhooks.js";

export const PAGES = [jobs, job, newRender, templates, template, credits, keys, webhooks, integrations, assets, signin];
