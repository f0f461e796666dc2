//! Uploaded images (employee photos, company logos): stored normalized under a hash of their
//! content, one row per company and hash, shared by whatever shows the same image.

use bytes::Bytes;
use uuid::Uuid;

use crate::{
    card::photo::StoredImage,
    db::{DbError, TenantTx},
};

/// A stored image, as served.
#[derive(Clone)]
pub struct StoredMedia {
    pub content_type: String,
    pub bytes: Bytes,
}

/// `/media/photos/{company}/{hash}.jpg`
pub fn photo_path(company_id: Uuid, hash: &str) -> String {
    format!("/media/photos/{company_id}/{hash}.jpg")
}

/// `/media/logos/{company}/{hash}.png`
pub fn logo_path(company_id: Uuid, hash: &str) -> String {
    format!("/media/logos/{company_id}/{hash}.png")
}

/// Where an image is shown: an employee's photo or a company's logo.
#[derive(Clone, Copy, Debug)]
pub enum ImageSlot {
    Photo { employee_id: Uuid },
    Logo { company_id: Uuid },
}

const INSERT_MEDIA: &str = "INSERT INTO media (company_id, hash, content_type, bytes)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (company_id, hash) DO NOTHING";

/// An image nothing refers to any more (a replaced photo or logo) goes; a shared one stays.
const DELETE_UNUSED_MEDIA: &str = "DELETE FROM media m
     WHERE m.hash = $1
       AND NOT EXISTS (SELECT 1 FROM employees e WHERE e.company_id = m.company_id AND e.photo_hash = m.hash)
       AND NOT EXISTS (SELECT 1 FROM companies c WHERE c.id = m.company_id AND c.logo_hash = m.hash)";

const SET_PHOTO: &str = "UPDATE employees SET photo_hash = $2 WHERE id = $1";
const SET_LOGO: &str = "UPDATE companies SET logo_hash = $2 WHERE id = $1";

const MEDIA: &str = "SELECT content_type, bytes FROM media WHERE hash = $1";

/// A stored image of the tenant's company.
pub async fn get(tx: &TenantTx, hash: &str) -> Result<Option<StoredMedia>, DbError> {
    let Some(row) = tx.query_opt(MEDIA, [&hash]).await? else {
        return Ok(None);
    };
    Ok(Some(StoredMedia {
        content_type: row.try_get("content_type")?,
        bytes: Bytes::from(row.try_get::<_, Vec<u8>>("bytes")?),
    }))
}

/// Shows `new` in `slot` (`None`: nothing), in place of `old` (the slot's hash, read under the
/// lock of its row), which goes if nothing else shows it.
pub async fn replace(
    tx: &TenantTx,
    company_id: Uuid,
    slot: ImageSlot,
    old: Option<&str>,
    new: Option<&StoredImage>,
) -> Result<(), DbError> {
    if old.is_none() && new.is_none() {
        return Ok(());
    }
    if let Some(image) = new {
        tx.execute(
            INSERT_MEDIA,
            [&company_id, &image.hash, &image.content_type, &image.bytes],
        )
        .await?;
    }
    let hash = new.map(|image| image.hash.as_str());
    match slot {
        ImageSlot::Photo { employee_id } => tx.execute(SET_PHOTO, [&employee_id, &hash]).await?,
        ImageSlot::Logo { company_id } => tx.execute(SET_LOGO, [&company_id, &hash]).await?,
    };
    if let Some(old) = old.filter(|old| Some(*old) != hash) {
        tx.execute(DELETE_UNUSED_MEDIA, [&old]).await?;
    }
    Ok(())
}
