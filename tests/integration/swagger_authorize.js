// Swagger UI's Authorize button, without a browser: loads the swagger-ui
// bundle that /docs serves, gives it the live API's /openapi.json, authorizes
// one security scheme the way the Authorize dialog does (preauthorizeApiKey
// stores the same state), lets Swagger UI build each request as its "Execute"
// does (fn.buildRequest with the authorized schemes), sends it, and checks
// the answer. For test_api_keys.sh.
//
//   node swagger_authorize.js SWAGGER_UI_DIR BASE_URL SCHEME KEY CASES_JSON
//
// CASES_JSON: [{"operationId", "parameters"?, "body"?, "status", "sendsKey"}]
// where sendsKey says whether the request must carry the key.
'use strict';
const path = require('path');

const [dir, base, scheme, key, casesJson] = process.argv.slice(2);
// The bundle reads these at start; nothing is rendered without a DOM node.
global.window = global;
global.self = global;
global.location = {hash: '', search: '', href: base + '/docs', pathname: '/docs'};
global.document = {baseURI: base + '/docs'}; // its $ref resolver's base
const SwaggerUIBundle = require(path.join(dir, 'swagger-ui-bundle.js'));

function carriesKey(headers) {
  return Object.entries(headers || {}).some(([, v]) => String(v).includes(key));
}

async function main() {
  const spec = await (await fetch(base + '/openapi.json')).json();
  const ui = SwaggerUIBundle({spec, presets: [SwaggerUIBundle.presets.apis]}).getSystem();
  ui.preauthorizeApiKey(scheme, key);
  const authorized = ui.authSelectors.authorized().toJS();
  if (!authorized[scheme]) throw new Error(`Swagger UI did not take the key for ${scheme}`);
  let failed = 0;
  for (const c of JSON.parse(casesJson)) {
    const req = ui.fn.buildRequest({
      spec: ui.specSelectors.specJson().toJS(),
      operationId: c.operationId,
      parameters: c.parameters || {},
      securities: {authorized},
      // as the page's body editor holds it: text
      requestBody: c.body === undefined ? undefined : JSON.stringify(c.body),
      requestContentType: c.body === undefined ? undefined : 'application/json',
    });
    const sent = carriesKey(req.headers);
    const res = await fetch(base + req.url, {method: req.method, headers: req.headers, body: req.body});
    const what = `${scheme}: ${c.operationId} (${req.method} ${req.url})`;
    if (sent !== c.sendsKey || res.status !== c.status) {
      console.error(`FAIL: ${what}: status ${res.status} (expected ${c.status}), ` +
                    `key sent: ${sent} (expected ${c.sendsKey}): ${await res.text()}`);
      failed = 1;
    } else {
      console.error(`ok: ${what}: ${res.status}, key ${sent ? 'sent' : 'not sent'}`);
    }
  }
  return failed;
}

// exit at once: the bundle schedules work for a page that is never drawn.
main().then((rc) => process.exit(rc), (e) => { console.error(`FAIL: ${e.stack || e}`); process.exit(1); });
