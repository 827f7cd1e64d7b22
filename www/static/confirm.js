/* confirm.js: a button with data-confirm (the order page's "Send reply")
 * asks in a dialog before its form is sent; when the consultant agrees
 * the form carries confirm=yes, so the server sends at once. Without
 * this script the server asks on a page of its own (the same field). */
(function () {
	'use strict';

	document.addEventListener('submit', function (ev) {
		var button = ev.submitter, form = ev.target, field;

		if (!button || !button.hasAttribute('data-confirm'))
			return;
		if (!window.confirm(button.getAttribute('data-confirm'))) {
			ev.preventDefault();
			return;
		}
		field = form.querySelector('input[name="confirm"]');
		if (field === null) {
			field = document.createElement('input');
			field.type = 'hidden';
			field.name = 'confirm';
			form.appendChild(field);
		}
		field.value = 'yes';
	});
}());
