"""The self-service kiosk: a Kivy touchscreen app over a controller that imports nothing of Kivy.

The controller (no Kivy anywhere in these modules):

- :mod:`kiosk.controller` — :class:`~kiosk.controller.KioskController`, the state machine the
  screens drive; :mod:`kiosk.machine` holds its states and transition table;
  :mod:`kiosk.presenter` turns its state into translated view models.
- :mod:`kiosk.flows`, :mod:`kiosk.switching`, :mod:`kiosk.patrons` — lending, returning,
  renewing, identifying, receipts, run on a worker (:mod:`kiosk.workers`);
  :mod:`kiosk.scanning`, :mod:`kiosk.visits`, :mod:`kiosk.staff_mode` — the controller's parts.
- :mod:`kiosk.offline` — the library's offline policy; :mod:`kiosk.units` — what is on the pad.
- :mod:`kiosk.journal` and :mod:`kiosk.recovery` — crash safety of security switches.
- :mod:`kiosk.i18n`, :mod:`kiosk.messages` and ``kiosk/locale`` — Vietnamese and English.
- :mod:`kiosk.ports` (what the controller needs), :mod:`kiosk.adapters` (the real devices and
  the agent's API), :mod:`kiosk.fakes` / :mod:`kiosk.fake_devices` (in-memory stand-ins),
  :mod:`kiosk.wiring` (a running controller from the site configuration);
  :mod:`kiosk.identify_devices` — the NFC card reader and the barcode scanner, feeding the
  controller on the UI thread.
"""
