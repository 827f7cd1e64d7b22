/* viewed.js: on a status page whose answer the client has not seen yet,
 * tells the site once the page is actually shown (POST /o/TOKEN/viewed,
 * the form #view-beacon holds its address and CSRF token), so that the
 * consultant sees when the answer was first read. Fetching the page
 * records nothing: mail scanners fetch links too. */
(function () {
	'use strict';
	var form = document.getElementById('view-beacon');
	var sent = false;

	function send() {
		if (sent || document.visibilityState !== 'visible')
			return;
		sent = true;
		fetch(form.action, {
			method: 'POST',
			body: new URLSearchParams(new FormData(form)),
			credentials: 'same-origin'
		}).catch(function () { sent = false; });
	}

	if (form === null || !window.fetch || !window.URLSearchParams)
		return;
	send();
	document.addEventListener('visibilitychange', send);
}());
