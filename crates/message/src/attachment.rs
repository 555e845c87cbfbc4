//! Attachments: a file on disk, its content type and the file name recipients see.

use std::path::{Path, PathBuf};

/// A file to attach. Nothing is read until the message is built (which checks that
/// the file can be opened) and rendered (which streams it as base64).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    path: PathBuf,
    content_type: Option<String>,
    filename: Option<String>,
}

impl Attachment {
    /// Attaches the file at `path`. The content type is guessed from the file name
    /// (`application/octet-stream` when unknown) and the name shown is the path's last
    /// component.
    pub fn from_path(path: impl Into<PathBuf>) -> Attachment {
        Attachment {
            path: path.into(),
            content_type: None,
            filename: None,
        }
    }

    /// Overrides the content type, e.g. `"application/pdf"`; checked when the message is built.
    pub fn content_type(mut self, mime: &str) -> Attachment {
        self.content_type = Some(mime.to_owned());
        self
    }

    /// Overrides the file name recipients see (and that the content type is guessed from).
    pub fn filename(mut self, name: impl Into<String>) -> Attachment {
        self.filename = Some(name.into());
        self
    }

    /// The path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file name recipients see: the override, else the path's last component.
    pub fn effective_filename(&self) -> String {
        match &self.filename {
            Some(name) => name.clone(),
            None => self
                .path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| "attachment".to_owned()),
        }
    }

    /// The content type override, if any (unchecked).
    pub(crate) fn content_type_override(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The content type to send when there is no override: guessed from the file name.
    pub(crate) fn guessed_content_type(&self) -> String {
        mime_guess::from_path(self.effective_filename())
            .first_or_octet_stream()
            .essence_str()
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_is_guessed_from_the_file_name() {
        let cases: &[(Attachment, &str, &str)] = &[
            (
                Attachment::from_path("dir/report.pdf"),
                "report.pdf",
                "application/pdf",
            ),
            (Attachment::from_path("photo.PNG"), "photo.PNG", "image/png"),
            (
                Attachment::from_path("notes.txt"),
                "notes.txt",
                "text/plain",
            ),
            (
                Attachment::from_path("data.unknownext"),
                "data.unknownext",
                "application/octet-stream",
            ),
            (
                Attachment::from_path("noext"),
                "noext",
                "application/octet-stream",
            ),
            (
                Attachment::from_path("tmp/x1").filename("page.html"),
                "page.html",
                "text/html",
            ),
            (
                Attachment::from_path(".."),
                "attachment",
                "application/octet-stream",
            ),
        ];
        for (attachment, filename, content_type) in cases {
            assert_eq!(attachment.effective_filename(), *filename);
            assert_eq!(attachment.guessed_content_type(), *content_type);
        }
    }
}
