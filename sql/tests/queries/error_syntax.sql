SELEC ad_id FROM clicks
