// The gateway console's playground (the page /gateway, M2.2): sends one chat request to the
// OpenAI-compatible endpoint with the API key the user pastes (keys are shown only once, so the
// page cannot fill it in) and shows the answer, its tokens and its status. Every text comes
// from the page (the message catalog), none from here. A file, not inline, so the pages'
// Content Security Policy can allow scripts from this site only.
(function () {
  var form = document.getElementById('playground-form');
  if (!form) return;
  var $ = function (id) { return document.getElementById(id); };
  var msg = function (name, vars) {
    var s = form.getAttribute('data-msg-' + name) || '';
    Object.keys(vars || {}).forEach(function (k) { s = s.split('{' + k + '}').join(String(vars[k])); });
    return s;
  };
  var errorBox = $('pg-error'), result = $('pg-result'), button = $('pg-send');
  function fail(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
  }
  form.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    errorBox.hidden = true;
    var key = $('pg-key').value.trim(), message = $('pg-message').value.trim(), model = $('pg-model').value;
    if (!key) { fail(msg('no-key')); $('pg-key').focus(); return; }
    if (!message) { fail(msg('no-message')); $('pg-message').focus(); return; }
    button.disabled = true;
    result.hidden = false;
    $('pg-status').textContent = msg('sending');
    ['pg-reply', 'pg-prompt-tokens', 'pg-completion-tokens', 'pg-total-tokens', 'pg-latency'].forEach(function (id) { $(id).textContent = ''; });
    var started = performance.now();
    var r;
    try {
      r = await fetch(form.getAttribute('data-endpoint'), {
        method: 'POST',
        credentials: 'omit',
        headers: { 'authorization': 'Bearer ' + key, 'content-type': 'application/json' },
        body: JSON.stringify({ model: model, messages: [{ role: 'user', content: message }] })
      });
    } catch (e) {
      button.disabled = false;
      result.hidden = true;
      fail(msg('network'));
      return;
    }
    var elapsed = Math.round(performance.now() - started);
    var body = await r.json().catch(function () { return null; });
    button.disabled = false;
    var requestId = r.headers.get('x-opchub-request-id') || '';
    if (!r.ok || !body) {
      result.hidden = true;
      var code = body && body.error && body.error.code;
      var known = code && form.getAttribute('data-err-' + code);
      fail(msg(body ? 'failed' : 'unreadable', { status: r.status, reason: known || (body && body.error && body.error.message) || '' }));
      return;
    }
    var choice = (body.choices || [])[0] || {};
    var usage = body.usage || {};
    $('pg-reply').textContent = (choice.message && choice.message.content) || '';
    $('pg-prompt-tokens').textContent = usage.prompt_tokens != null ? String(usage.prompt_tokens) : '—';
    $('pg-completion-tokens').textContent = usage.completion_tokens != null ? String(usage.completion_tokens) : '—';
    $('pg-total-tokens').textContent = usage.total_tokens != null ? String(usage.total_tokens) : '—';
    $('pg-latency').textContent = elapsed + ' ms';
    $('pg-status').textContent = msg('ok', { status: r.status, request: requestId });
  });
})();
