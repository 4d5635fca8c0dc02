DROP TABLE segment_sync_batches;
DROP TABLE segment_sync_segments;
DROP TABLE segment_syncs;
DROP TABLE segment_members;
DROP TABLE segments;
DROP TABLE segment_numbers;
DROP TABLE profiles;
