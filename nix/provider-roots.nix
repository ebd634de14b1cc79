# kato's default provider roots, relative to the home directory: what the
# per-user instances (services.kato.instances) and the home-manager module
# bind read-only by default. Generated from the providers' default_roots
# (src/provider/*.rs) by `KATO_BLESS=1 cargo test --test it deploy_roots`,
# like the lists in systemd/kato@.service and kato-user.service; do not
# edit by hand. An empty list: no default (Aider's project folders).
{
  claude = [ ".claude/projects" ];
  codex = [ ".codex/sessions" ".codex/archived_sessions" ];
  gemini = [ ".gemini/tmp" ];
  copilot = [ ".copilot/session-state" ".copilot/history-session-state" ];
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
  aider = [ ];
  opencode = [ ".local/share/opencode" ];
  crush = [ ];
  goose = [ ".local/share/goose/sessions" ];
}
