# kato's default provider roots, relative to the home directory: what the
# per-user instances (services.kato.instances) and the home-manager module
# bind read-only by default. The same list as systemd/kato@.service;
# tests/it/deploy_roots.rs checks both against the providers' code
# (src/provider/*.rs default_roots). A new provider adds one line here.
{
  claude = [ ".claude/projects" ];
  codex = [ ".codex/sessions" ".codex/archived_sessions" ];
  gemini = [ ".gemini/tmp" ];
  copilot = [ ".copilot/session-state" ".copilot/history-session-state" ];
  # Cline and Roo Code in every editor: the tasks/ folders only.
  cline = [
    ".config/Code/User/globalStorage/saoudrizwan.claude-dev/tasks"
    ".config/Code/User/globalStorage/rooveterinaryinc.roo-cline/tasks"
    ".config/Code - Insiders/User/globalStorage/saoudrizwan.claude-dev/tasks"
    ".config/Code - Insiders/User/globalStorage/rooveterinaryinc.roo-cline/tasks"
    ".config/VSCodium/User/globalStorage/saoudrizwan.claude-dev/tasks"
    ".config/VSCodium/User/globalStorage/rooveterinaryinc.roo-cline/tasks"
    ".config/Cursor/User/globalStorage/saoudrizwan.claude-dev/tasks"
    ".config/Cursor/User/globalStorage/rooveterinaryinc.roo-cline/tasks"
    ".config/Windsurf/User/globalStorage/saoudrizwan.claude-dev/tasks"
    ".config/Windsurf/User/globalStorage/rooveterinaryinc.roo-cline/tasks"
    ".cline/data/tasks"
  ];
  qwen = [ ".qwen/projects" ];
  cursor = [ ".cursor/projects" ];
  droid = [ ".factory/sessions" ];
  amp = [ ".local/share/amp/threads" ];
  kimi = [ ".kimi/sessions" ];
  # No default: the project folders are named per instance.
  aider = [ ];
}
