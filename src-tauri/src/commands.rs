use polykey_node::api::{ApiError, CreatedDto, StatusDto};
use polykey_node::Node;
use tauri::State;

type Result<T> = std::result::Result<T, ApiError>;

#[tauri::command]
pub async fn status(node: State<'_, Node>) -> Result<StatusDto> {
    Ok(node.status().into())
}

#[tauri::command]
pub async fn create_node(node: State<'_, Node>, password: String) -> Result<CreatedDto> {
    Ok(node.create(password.into()).await?.into())
}

#[tauri::command]
pub async fn unlock(node: State<'_, Node>, password: String) -> Result<()> {
    Ok(node.unlock(password.into()).await?)
}

#[tauri::command]
pub async fn lock(node: State<'_, Node>) -> Result<()> {
    Ok(node.lock().await?)
}

#[tauri::command]
pub async fn recover(node: State<'_, Node>, code: String, password: String) -> Result<()> {
    Ok(node.recover(&code, password.into()).await?)
}

#[tauri::command]
pub async fn change_password(node: State<'_, Node>, old: String, new: String) -> Result<()> {
    Ok(node.change_password(old.into(), new.into()).await?)
}
