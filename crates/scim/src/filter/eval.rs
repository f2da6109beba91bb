//! PLACEHOLDER — being written (filter evaluation).
