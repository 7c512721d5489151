# rebuild-winpe-setup: v1
# rebuild: the WinPE side of a reimage (Windows PowerShell 5.1 in WinPE; optional components
# WinPE-WMI, WinPE-NetFX, WinPE-Scripting, WinPE-PowerShell, WinPE-StorageWMI).
# Started by winpeshl.ini after wpeinit. wimboot injected the iPXE entry's files into
# X:\Windows\System32 (ipxe.org/wimboot), where Windows Setup does not look for an answer file:
#   rebuild-unattend.xml  the host's answer file; its DiskID elements say REBUILD-SYSTEM-DISK
#                         (not a number: Setup refuses it unless this script chose the disk)
#   rebuild-disk.json     how to recognise the system disk: serial (from the register, optional),
#                         excluded_buses (SAN, USB, ...), min_size_gb
# It picks the one disk matching, writes its number into every DiskID, reads the image's id and
# SHA-256 from the share (with Setup's InstallFrom/Credentials) into the first-logon stamp
# command (REBUILD-IMAGE-ID / REBUILD-IMAGE-SHA256), and starts Setup with that answer file
# (setup.exe /unattend:). Needs WinPE-DismCmdlets too (Get-WindowsImage). Several or no candidates: it refuses, shows why, and
# never starts Setup, so nothing is wiped; the host never comes back and the run reports it.
$ErrorActionPreference = 'Stop'
$here = Join-Path $env:SystemRoot 'System32'
$answerIn = Join-Path $here 'rebuild-unattend.xml'
$criteriaFile = Join-Path $here 'rebuild-disk.json'
$answerOut = 'X:\rebuild-unattend.xml'
$refusal = 'X:\rebuild-refused.txt'

function Stop-Here([string]$Why) {
    Set-Content -LiteralPath $refusal -Value $Why -Encoding UTF8
    Write-Host "rebuild: Setup NOT started: $Why"
    Write-Host 'rebuild: nothing was wiped. Fix the register (system disk serial) and run the reimage again.'
    while ($true) { Start-Sleep -Seconds 3600 }
}

try {
    $criteria = Get-Content -LiteralPath $criteriaFile -Raw | ConvertFrom-Json
    $excluded = @($criteria.excluded_buses | ForEach-Object { [string]$_ })
    $gib = [int64]1073741824
    $minBytes = [int64]$criteria.min_size_gb * $gib
    $serial = ([string]$criteria.serial).Trim()
    $candidates = @(Get-Disk | Where-Object {
            ($excluded -notcontains [string]$_.BusType) -and
            ($_.Size -ge $minBytes) -and
            ((-not $serial) -or (([string]$_.SerialNumber).Trim() -eq $serial))
        })
    if ($candidates.Count -ne 1) {
        $seen = (Get-Disk | ForEach-Object {
                "disk $($_.Number): $($_.BusType) $([math]::Round($_.Size / $gib)) GB serial '$(([string]$_.SerialNumber).Trim())'"
            }) -join '; '
        Stop-Here "$($candidates.Count) disks match the system disk criteria (serial '$serial', not $($excluded -join '/'), at least $($criteria.min_size_gb) GB); disks: $seen"
    }
    $number = [string]$candidates[0].Number
    [xml]$answer = Get-Content -LiteralPath $answerIn -Raw
    $ns = New-Object System.Xml.XmlNamespaceManager($answer.NameTable)
    $ns.AddNamespace('u', 'urn:schemas-microsoft-com:unattend')
    foreach ($node in $answer.SelectNodes('//u:DiskID', $ns)) { $node.InnerText = $number }
    # The image share refuses guest access: map it with Setup's own read-only credential
    # (InstallFrom/Credentials), then read the WIM Setup will apply for the first-logon stamp.
    $from = $answer.SelectSingleNode('//u:ImageInstall/u:OSImage/u:InstallFrom', $ns)
    $wim = $from.Path
    $share = ($wim -split '\\')[0..3] -join '\'
    $user = $from.Credentials.Username
    if ($from.Credentials.Domain) { $user = $from.Credentials.Domain + '\' + $user }
    & net.exe use $share $from.Credentials.Password "/user:$user" | Out-Null
    if ($LASTEXITCODE -ne 0) { Stop-Here "cannot open the image share $share as $user (net use exit $LASTEXITCODE)" }
    $imageId = (Get-WindowsImage -ImagePath $wim -Index 1).ImageDescription
    $sha256 = (Get-FileHash -Algorithm SHA256 -LiteralPath $wim).Hash.ToLowerInvariant()
    foreach ($node in $answer.SelectNodes('//u:CommandLine', $ns)) {
        $node.InnerText = $node.InnerText.Replace('REBUILD-IMAGE-ID', $imageId).Replace('REBUILD-IMAGE-SHA256', $sha256)
    }
    $answer.Save($answerOut)
}
catch {
    Stop-Here "cannot choose the system disk: $($_.Exception.Message)"
}
Write-Host "rebuild: system disk is disk $number; starting Windows Setup"
$setup = Start-Process -FilePath 'X:\sources\setup.exe' -ArgumentList "/unattend:$answerOut" -PassThru -Wait
exit $setup.ExitCode
