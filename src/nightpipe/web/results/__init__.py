"""What a user looks at once a job has run: its frames, images, source tables, light curves, report."""
