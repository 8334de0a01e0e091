SELECT * FROM notes
