/*
 * Passkeys in the browser, with @simplewebauthn/browser (loaded before this, from /static/webauthn.js).
 * Sign-in (#passkey-form): the button asks for a passkey; on the login page the browser's autofill
 * offers passkeys too (conditional mediation) where it can. Enrolment (#passkey-enrol-form): asks
 * the authenticator for a new passkey. Either way the answer goes into the form's hidden field and
 * the form is submitted; the server verifies it. Without WebAuthn, the buttons stay hidden.
 */
(function () {
  'use strict';
  var webauthn = window.SimpleWebAuthnBrowser;
  if (!webauthn || !webauthn.browserSupportsWebAuthn()) return;

  function wire(form, ceremony, buttonId) {
    if (!form) return;
    var options = JSON.parse(form.getAttribute('data-options'));
    var button = document.getElementById(buttonId);
    var error = form.querySelector('.passkey-error');
    function send(response) {
      form.elements.credential.value = JSON.stringify(response);
      // "Keep me signed in" of the login page applies to a passkey sign-in too.
      var remember = document.querySelector('input[type=checkbox][name=remember]');
      if (form.elements.remember && remember && remember.checked) form.elements.remember.value = 'yes';
      form.submit();
    }
    function failed(reason) {
      // An autofill ceremony replaced by the button's is aborted: not an error worth showing.
      if (reason && reason.name === 'AbortError') return;
      if (error) error.hidden = false;
    }
    button.hidden = false;
    button.addEventListener('click', function () {
      if (error) error.hidden = true;
      ceremony({ optionsJSON: options }).then(send, failed);
    });
    return { options: options, send: send };
  }

  var signIn = document.getElementById('passkey-form');
  var wired = wire(signIn, webauthn.startAuthentication, 'passkey-button');
  if (wired && signIn.getAttribute('data-autofill') === 'yes') {
    webauthn.browserSupportsWebAuthnAutofill().then(function (supported) {
      if (!supported) return;
      webauthn.startAuthentication({ optionsJSON: wired.options, useBrowserAutofill: true }).then(wired.send, function () {});
    });
  }

  wire(document.getElementById('passkey-enrol-form'), webauthn.startRegistration, 'passkey-enrol-button');
})();
