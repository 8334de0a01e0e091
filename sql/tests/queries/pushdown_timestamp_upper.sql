SELECT count(*) AS n FROM clicks WHERE _timestamp < TIMESTAMP '2023-11-14T22:13:25'
