INSERT INTO ads VALUES (9, 'x', 1.0, 0, 0, now(), NULL)
