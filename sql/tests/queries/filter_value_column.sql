SELECT ad_id, count(*) AS n FROM clicks WHERE user_id = 100 GROUP BY ad_id ORDER BY ad_id
