"""Inputs: image files, folders and globs, built-in samples; text and data sets come with later commands."""
