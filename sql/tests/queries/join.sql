SELECT a.campaign, count(*) AS clicks, sum(a.budget) AS spend FROM clicks c JOIN ads a ON c.ad_id = a.ad_id GROUP BY a.campaign ORDER BY a.campaign NULLS LAST
