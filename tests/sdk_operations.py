"""Which method of each official SDK calls each operation of the API: operationId ->
(Python method, TypeScript method), each a path from the client (`jobs.delete_output`).

tests/test_sdk_python_routes.py holds this table to the served OpenAPI document (a route
added without a method fails there) and to both Python clients; the TypeScript SDK's
Node tests hold it to `PhantomFlow` (test/operations.test.mjs). None: not an API
operation (the dashboard's pages are for people).
"""

from __future__ import annotations

SDK_METHODS: dict[str, tuple[str, str] | None] = {
    "submitRender": ("renders.create", "renders.create"),
    "renderTemplate": ("templates.render", "templates.render"),
    "getRenderSchema": ("schema.script", "schema.script"),
    "getOpenApiDocument": ("schema.openapi", "schema.openapi"),
    "listJobs": ("jobs.list", "jobs.list"),
    "getJob": ("jobs.get", "jobs.get"),
    "getJobEvents": ("jobs.history", "jobs.history"),
    "cancelJob": ("jobs.cancel", "jobs.cancel"),
    "getOutput": ("jobs.download", "jobs.download"),
    "deleteJobOutput": ("jobs.delete_output", "jobs.deleteOutput"),
    "streamJobProgress": ("jobs.follow", "jobs.follow"),
    "streamAccountEvents": ("events.follow", "events.follow"),
    "getJobWebhooks": ("webhooks.deliveries", "webhooks.deliveries"),
    "redeliverJobWebhook": ("webhooks.redeliver", "webhooks.redeliver"),
    "getWebhookSecret": ("webhooks.secret", "webhooks.secret"),
    "rotateWebhookSecret": ("webhooks.rotate_secret", "webhooks.rotateSecret"),
    "createTemplate": ("templates.create", "templates.create"),
    "listTemplates": ("templates.list", "templates.list"),
    "getTemplate": ("templates.get", "templates.get"),
    "replaceTemplate": ("templates.replace", "templates.replace"),
    "updateTemplate": ("templates.update", "templates.update"),
    "deleteTemplate": ("templates.delete", "templates.delete"),
    "listTemplateVersions": ("templates.versions", "templates.versions"),
    "listKeys": ("keys.list", "keys.list"),
    "createKey": ("keys.create", "keys.create"),
    "revokeKey": ("keys.revoke", "keys.revoke"),
    "getAccount": ("account.get", "account.get"),
    "getCredits": ("credits.balance", "credits.balance"),
    "getBalanceAt": ("credits.balance_at", "credits.balanceAt"),
    "getLedger": ("credits.ledger", "credits.ledger"),
    "downloadLedgerCsv": ("credits.ledger_csv", "credits.ledgerCsv"),
    "createIntegration": ("integrations.create", "integrations.create"),
    "listIntegrations": ("integrations.list", "integrations.list"),
    "getIntegration": ("integrations.get", "integrations.get"),
    "deleteIntegration": ("integrations.delete", "integrations.delete"),
    "uploadAssets": ("assets.upload", "assets.upload"),
    "listAssets": ("assets.list", "assets.list"),
    "getAsset": ("assets.get", "assets.get"),
    "getAssetContent": ("assets.download", "assets.download"),
    "deleteAsset": ("assets.delete", "assets.delete"),
    "createPreview": ("previews.create", "previews.create"),
    "getPreview": ("previews.get", "previews.get"),
    "deletePreview": ("previews.delete", "previews.delete"),
    "renderPreview": ("previews.render", "previews.render"),
    "streamPreviewProgress": ("previews.follow", "previews.follow"),
    "viewPreview": ("previews.page", "previews.page"),
    "getPreviewFile": ("previews.download", "previews.download"),
    "getRoot": None,
    "getDashboard": None,
    "getDashboardFile": None,
    "getDashboardPage": None,
}
