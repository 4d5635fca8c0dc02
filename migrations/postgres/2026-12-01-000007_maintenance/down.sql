DROP TABLE maintenance_done;
