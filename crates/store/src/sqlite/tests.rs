//! Tests of the SQLite backend (filled in next).
