SELECT count(*) AS n FROM clicks WHERE _partition = 7
