SELECT ad_id, user_id FROM clicks WHERE _partition = 0 ORDER BY _offset
