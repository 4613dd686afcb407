"""Where a user's files live: ``data_dir/users/<id>/`` holds uploads, jobs and temporary files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class UserPaths:
    """The folders of one user; nothing of a user is ever written outside ``root``."""

    data_dir: Path
    user_id: int

    @property
    def root(self) -> Path:
        return self.data_dir / "users" / str(int(self.user_id))

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def job_dir(self, job_id: int) -> Path:
        return self.jobs / str(int(job_id))

    def job_input(self, job_id: int) -> Path:
        """The raw frames of a job: links to the chosen uploads."""
        return self.job_dir(job_id) / "input"

    def job_output(self, job_id: int) -> Path:
        """The engine's ``paths.output`` for the job."""
        return self.job_dir(job_id) / "out"

    def job_log(self, job_id: int) -> Path:
        """The job's whole log, as the engine wrote it."""
        return self.job_dir(job_id) / "job.log"

    def job_db_url(self, job_id: int) -> str:
        """The engine's database for the job: one SQLite file per job."""
        return f"sqlite:///{(self.job_dir(job_id) / 'nightpipe.sqlite').resolve()}"

    def make(self) -> UserPaths:
        for folder in (self.uploads, self.jobs, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        return self
