//! PLACEHOLDER — being written (PATCH operations).
