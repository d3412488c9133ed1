// Opening a link to a trace: start fetching its timeline (and the step named in the link) now,
// while the modules load, and parse each body as soon as it is in, so the timeline can be drawn
// in the same task that runs the modules. api.js picks the results up; app.js drops any the page
// did not use. A classic script (not inline: the agent's Content-Security-Policy allows only
// 'self' scripts).
(function () {
  'use strict';
  var m = /^#\/traces\/([0-9a-f]{32})(?:[?](.*))?$/.exec(location.hash);
  if (!m || !window.fetch) return;
  // The access token the page was given in this tab (see api.js), if the agent wants one.
  var token = null;
  try {
    token = window.sessionStorage.getItem('flowscope.token');
  } catch (e) {
    /* storage disabled */
  }
  var headers = { accept: 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  var early = (window.__flowscopePrefetch = {});
  var perf = (window.__flowscope = window.__flowscope || {});
  // {res, body} for a response that is OK, else {res} (api.js reads the error); a body that is
  // not JSON gives {res, error}.
  var get = function (path) {
    var r = fetch(path, { headers: headers }).then(function (res) {
      if (!res.ok) return { res: res };
      return res.text().then(function (text) {
        var t0 = performance.now();
        var body;
        try {
          body = JSON.parse(text);
        } catch (e) {
          return { res: res, error: e };
        }
        (perf.fetches = perf.fetches || []).push({ path: path, bytes: text.length, parseMs: performance.now() - t0, at: t0 });
        return { res: res, body: body };
      });
    });
    r.catch(function () {}); // a failure is reported when the page uses it
    early[path] = { result: r, token: token };
  };
  get('api/traces/' + m[1] + '?view=timeline');
  var s = /(?:^|&)step=([0-9a-f]{16})(?:&|$)/.exec(m[2] || '');
  if (s) get('api/traces/' + m[1] + '/steps/' + s[1]);
})();
