"""The browser dashboard: sign-up, sign-in, and the tenant's self-service pages.

Server-rendered Django templates with CSRF on every form and a little plain JavaScript
(``accounts/static/dashboard/app.js``) for copy buttons and live states. Every change goes
through the same services as the API (``accounts.services``, ``accounts.plans``).
"""
