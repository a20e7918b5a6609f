-- v29 (issue 22): PostgreSQL only (events partitions, see postgis/029); nothing to change here.
SELECT 1;
