SELECT ad_id FROM bad_clicks
