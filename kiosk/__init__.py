"""The self-service kiosk: a Kivy touchscreen app over a controller that imports nothing of Kivy."""
