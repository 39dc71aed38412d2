//! The file transport: each message becomes one `.eml` file in an outbox
//! folder, written to a temporary name and renamed, so a file is never half there.

use std::path::{Path, PathBuf};

use lettre::Message;

use super::{Delivery, TransportError};

pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    pub fn new(dir: &Path) -> Result<FileTransport, TransportError> {
        std::fs::create_dir_all(dir).map_err(|error| TransportError::Outbox {
            dir: dir.to_path_buf(),
            error,
        })?;
        Ok(FileTransport { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub async fn send(&self, message: &Message, label: &str) -> Delivery {
        let name: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("{name}.eml"));
        let tmp = self.dir.join(format!(".{name}.eml.tmp"));
        let bytes = message.formatted();
        let written = async {
            tokio::fs::write(&tmp, &bytes).await?;
            tokio::fs::rename(&tmp, &path).await
        };
        match written.await {
            Ok(()) => Delivery::Accepted(format!("written to {}", path.display())),
            Err(e) => Delivery::Transient {
                reply: format!("cannot write {}: {e}", path.display()),
                in_doubt: false,
            },
        }
    }
}
