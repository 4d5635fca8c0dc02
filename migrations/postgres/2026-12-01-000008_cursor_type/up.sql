-- The sort of the Last Field's column (integer, decimal, instant, timestamp, date,
-- text) stored with the cursor by the run that set it: a later run whose column
-- orders differently fails instead of moving the cursor by another order. NULL for
-- cursors saved by hand (and those stored before this column): the next run sets it.
ALTER TABLE commands ADD COLUMN last_value_type TEXT;
