// Opening a link to a trace: start fetching its timeline (and the step named in the link) now,
// while the modules load. api.js picks the responses up; app.js drops any the page did not use.
// A classic script (not inline: the agent's Content-Security-Policy allows only 'self' scripts).
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
  var get = function (path) {
    var r = fetch(path, { headers: headers });
    r.catch(function () {}); // a failure is reported when the page uses it
    early[path] = { response: r, token: token };
  };
  get('api/traces/' + m[1] + '?view=timeline');
  var s = /(?:^|&)step=([0-9a-f]{16})(?:&|$)/.exec(m[2] || '');
  if (s) get('api/traces/' + m[1] + '/steps/' + s[1]);
})();
