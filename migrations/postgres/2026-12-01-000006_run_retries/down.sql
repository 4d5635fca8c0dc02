ALTER TABLE command_runs DROP COLUMN next_attempt_at;
ALTER TABLE command_runs DROP COLUMN attempts;
