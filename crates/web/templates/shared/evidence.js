// Evidence uploads of an application (the page /applications/{id}): each file input posts its
// file to the API with the session's CSRF token. A file, not inline, so the pages' Content
// Security Policy can allow scripts from this site only.
(function () {
  var list = document.getElementById('evidence');
  if (!list) return;
  var id = list.dataset.application, csrf = list.dataset.csrf;
  document.querySelectorAll('.evidence-file').forEach(function (input) {
    input.addEventListener('change', async function () {
      const file = input.files[0];
      if (!file) return;
      const r = await fetch('/api/v1/applications/' + encodeURIComponent(id) + '/files?slot=' + input.dataset.slot + '&name=' + encodeURIComponent(file.name), {
        method: 'POST', headers: { 'x-csrf-token': csrf, 'content-type': file.type || 'application/octet-stream' }, body: file, credentials: 'same-origin'
      });
      if (r.ok) { location.reload(); return; }
      const e = await r.json().catch(function () { return {}; });
      const box = document.getElementById('upload-error');
      box.textContent = (e.error && e.error.message) || r.status;
      box.hidden = false;
    });
  });
})();
