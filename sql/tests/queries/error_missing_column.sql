SELECT user_id FROM bad_clicks WHERE _offset >= 2
