"""Which of ComfyUI's core nodes Weft has, and which it leaves to other model families.

ComfyUI's current core node set is the list of node folders in the ``comfyui-embedded-docs``
package (ComfyUI's own node documentation, one folder per core node). Weft carries every node of
that set that serves Stable Diffusion–family models or no model at all (image, mask, latent,
conditioning, sampling, patches, merging, ControlNet, upscale, CLIP vision, logic, strings …), under
ComfyUI's exact name. The rest serve other model families (video, audio, 3D, Flux, SD3, partner
APIs …) and are listed here with their family, so the coverage table in docs/nodes.md and its test
(tests/nodes/test_comfyui_coverage.py) can tell "not Weft's" from "missing".
"""

from __future__ import annotations

#: Nodes ComfyUI's frontend keeps to itself (never in an API prompt); Weft's workflow converter
#: drops or resolves them (graph/workflow/), as ComfyUI's frontend does.
FRONTEND_ONLY = frozenset({"MarkdownNote", "Note", "Reroute"})

#: Documentation folders that name no node of ComfyUI's source: pages kept for a node under an
#: older title, mapped to the node id they document.
DOCUMENTATION_ONLY: dict[str, str] = {
    "DeprecatedCheckpointLoader": "CheckpointLoader",
    "DeprecatedDiffusersLoader": "DiffusersLoader",
}

#: Core nodes of other model families, by family.
OTHER_FAMILIES: dict[str, tuple[str, ...]] = {
    "flow-matching models (Flux, SD3, Wan …)": ("ModelNoiseScale",),
    "partner API": (
        "BeebleSwitchXImageEdit", "BeebleSwitchXVideoEdit", "BriaAddObject", "BriaEraseByText",
        "BriaEraseForeground", "BriaEraser", "BriaExpandImage", "BriaGenFill",
        "BriaGuidedRemoveBackground", "BriaImageEditNode", "BriaImageGenerate",
        "BriaIncreaseResolution", "BriaProductHolding", "BriaRelight", "BriaRemoveImageBackground",
        "BriaRemoveVideoBackground", "BriaReplaceImageBackground", "BriaReplaceObject",
        "BriaReseason", "BriaRestorePhoto", "BriaTransparentVideoBackground", "BriaVideoEraser",
        "BriaVideoGreenScreen", "BriaVideoReplaceBackground", "BriaVirtualTryOn",
        "BuildJsonPromptIdeogram", "ByteDance2DraftToFinalVideoNode",
        "ByteDance2FirstLastFrameNode", "ByteDance2ReferenceNode", "ByteDance2ReferenceNodeV2",
        "ByteDance2TextToVideoNode", "ByteDanceCreateImageAsset", "ByteDanceCreateVideoAsset",
        "ByteDanceFirstLastFrameNode", "ByteDanceImageToVideoNode", "ByteDanceSeedAudio",
        "ByteDanceSeedNode", "ByteDanceSeedreamLayerSeparationNode",
        "ByteDanceSeedreamLayerSeparationNodeV2", "ByteDanceSeedreamNode",
        "ByteDanceSeedreamNodeV2", "ByteDanceSeedreamNodeV3", "ByteDanceTextToVideoNode",
        "ByteDanceVideoEnhanceNode", "ClarityCrystalUpscaleNode", "ClarityCrystalVideoUpscaleNode",
        "ClaudeNode", "ComfyCloudFlux2TextToImageNode", "ComfyCloudMageFlowTextToImageNode",
        "ComfyCloudMageFlowTurboTextToImageNode", "ComfyCloudMiniMaxH3FirstLastFrameToVideoNode",
        "ComfyCloudMiniMaxH3ImageToVideoNode", "ComfyCloudMiniMaxH3TextToVideoNode",
        "ComfyCloudMiniMaxMusic3TextToAudioNode", "ComfyCloudZImageTurboNode",
        "ElevenLabsAudioIsolation", "ElevenLabsInstantVoiceClone", "ElevenLabsSpeechToSpeech",
        "ElevenLabsSpeechToText", "ElevenLabsTextToDialogue", "ElevenLabsTextToSoundEffects",
        "ElevenLabsTextToSpeech", "ElevenLabsVoiceSelector", "FishAudioInstantVoiceClone",
        "FishAudioSpeechToText", "FishAudioTextToSpeech", "FishAudioVoiceSelector",
        "Flux2ImageNode", "Flux2MaxImageNode", "Flux2ProImageNode", "Flux3ImageNode",
        "Flux3ImageToVideoNode", "Flux3MaxImageToVideoNode", "Flux3MaxTextToVideoNode",
        "Flux3TextToVideoNode", "Flux3VideoContinuationNode", "FluxEraseNode",
        "FluxKontextMaxImageNode", "FluxKontextProImageNode", "FluxProExpandNode",
        "FluxProFillNode", "FluxProUltraImageNode", "FluxVTONode", "FluxVideoEditNode",
        "FluxVideoUpscaleNode", "GeminiImage2Node", "GeminiImageNode", "GeminiInputFiles",
        "GeminiNanoBanana2", "GeminiNanoBanana2V2", "GeminiNode", "GeminiNodeV2", "GeminiNodeV3",
        "GeminiVideoOmni", "GeminiVideoOmniV2", "GrokImageEditNode", "GrokImageEditNodeV2",
        "GrokImageNode", "GrokVideoEditNode", "GrokVideoExtendNode", "GrokVideoNode",
        "GrokVideoReferenceNode", "HappyHorseImageToVideoApi", "HappyHorseReferenceVideoApi",
        "HappyHorseTextToVideoApi", "HappyHorseVideoEditApi", "HeyGenAvatarVideoNode",
        "HeyGenCreateAvatarNode", "HeyGenImageToVideoNode", "HeyGenReferenceToVideoNode",
        "HeyGenTalkingPhotoNode", "HeyGenTextToSpeechNode", "HeyGenVideoTranslateNode",
        "HeyGenVoiceCloneNode", "HeyGenVoiceTextToSpeechNode", "HiggsfieldMotionTransferNode",
        "HitPawGeneralImageEnhance", "HitPawVideoEnhance", "HunyuanImageEditApi",
        "HunyuanImageTextToImageApi", "Ideogram4Scheduler", "IdeogramEditApi", "IdeogramPImage",
        "IdeogramPreciseEditApi", "IdeogramTextToImageApi", "IdeogramV3", "IdeogramV4",
        "IdeogramVectorGenerateApi", "IdeogramVectorImageToSVGApi", "KlingAvatarNode",
        "KlingFirstLastFrameNode", "KlingImage2VideoNode", "KlingImageGenerationNode",
        "KlingImageToVideoWithAudio", "KlingLipSyncAudioToVideoNode", "KlingLipSyncTextToVideoNode",
        "KlingMotionControl", "KlingOmniProEditVideoNode", "KlingOmniProFirstLastFrameNode",
        "KlingOmniProImageNode", "KlingOmniProImageToVideoNode", "KlingOmniProTextToVideoNode",
        "KlingOmniProVideoToVideoNode", "KlingStartEndFrameNode", "KlingTextToVideoNode",
        "KlingTextToVideoWithAudio", "KlingTryOnNode", "KlingVideoNode", "Krea2ImageNode",
        "Krea2StyleReferenceNode", "Krea3ImageNode", "LtxApi25AudioToVideo", "LtxApi25ImageToVideo",
        "LtxApi25TextToVideo", "LumaConceptsNode", "LumaImageEditNode2", "LumaImageModifyNode",
        "LumaImageNode", "LumaImageNode2", "LumaImageToVideoNode", "LumaRay32ExtendVideoNode",
        "LumaRay32ImageToVideoNode", "LumaRay32KeyframeNode", "LumaRay32KeyframesToVideoNode",
        "LumaRay32TextToVideoNode", "LumaRay32VideoEditNode", "LumaRay32VideoReframeNode",
        "LumaReferenceNode", "LumaVideoNode", "MagnificImageRelightNode",
        "MagnificImageSkinEnhancerNode", "MagnificImageStyleTransferNode",
        "MagnificImageUpscalerCreativeNode", "MagnificImageUpscalerPreciseV2Node",
        "MeshyAnimateModelNode", "MeshyImageToModelNode", "MeshyImageToModelSmartTopologyNode",
        "MeshyMultiImageToModelNode", "MeshyRefineNode", "MeshyRigModelNode",
        "MeshyTextToModelNode", "MeshyTextToModelSmartTopologyNode", "MeshyTextureMultiViewNode",
        "MeshyTextureNode", "MetaMuseImageEditApi", "MetaMuseImageTextToImageApi",
        "MinimaxHailuo03ContextIRNode", "MinimaxHailuo03FirstLastFrameNode",
        "MinimaxHailuo03ReferenceNode", "MinimaxHailuo03RegenerateNode",
        "MinimaxHailuo03TextToVideoNode", "MinimaxHailuoVideoNode", "MinimaxImageToVideoNode",
        "MinimaxTextToVideoNode", "MireloTextToSFX", "MireloVideoToSFX", "OpenAIChatConfig",
        "OpenAIChatNode", "OpenAIGPTImage1", "OpenAIGPTImageNodeV2", "OpenAIInputFiles",
        "OpenRouterImageNode", "OpenRouterLLMNode", "PixverseImageToVideoNode",
        "PixverseTemplateNode", "PixverseTextToVideoNode", "PixverseTransitionVideoNode",
        "PixverseV6ExtendVideoNode", "PixverseV6FirstLastFrameNode", "PixverseV6FusionVideoNode",
        "PixverseV6ImageToVideoNode", "PixverseV6TextToVideoNode", "PrunaImageToVideoNode",
        "PrunaTextToVideoNode", "QuiverImageToSVGNode", "QuiverImageToSVGNodeV2",
        "QuiverTextToSVGNode", "QuiverTextToSVGNodeV2", "QwenImageEditApi",
        "QwenImageTextToImageApi", "RecraftColorRGB", "RecraftControls", "RecraftCreateStyleNode",
        "RecraftCreativeUpscaleNode", "RecraftCrispUpscaleNode", "RecraftImageInpaintingNode",
        "RecraftImageToImageNode", "RecraftRemoveBackgroundNode", "RecraftReplaceBackgroundNode",
        "RecraftStyleV3DigitalIllustration", "RecraftStyleV3InfiniteStyleLibrary",
        "RecraftStyleV3LogoRaster", "RecraftStyleV3RealisticImage", "RecraftTextToImageNode",
        "RecraftTextToVectorNode", "RecraftV4CreateStyleNode", "RecraftV4TextToImageNode",
        "RecraftV4TextToVectorNode", "RecraftVectorizeImageNode", "ReveImageCreateNode",
        "ReveImageEditNode", "ReveImageRemixNode", "Rodin3D_Detail", "Rodin3D_Gen2",
        "Rodin3D_Gen25_Image", "Rodin3D_Gen25_Text", "Rodin3D_Regular", "Rodin3D_Sketch",
        "Rodin3D_Smooth", "RunwayAleph2KeyframeNode", "RunwayAleph2PromptImageNode",
        "RunwayAleph2VideoToVideoNode", "RunwayFirstLastFrameNode", "RunwayImageToVideoNodeGen3a",
        "RunwayImageToVideoNodeGen4", "RunwayTextToImageNode", "SaveSVGNode", "SoniloTextToMusic",
        "SoniloVideoToMusic", "SyncLipSyncNode", "SyncTalkingImageNode", "Tencent3DPartNode",
        "Tencent3DTextureEditNode", "TencentImageToModelNode", "TencentModelTo3DUVNode",
        "TencentSmartTopologyNode", "TencentTextToModelNode", "TopazImageEnhance",
        "TopazImageEnhanceV2", "TopazVideoEnhance", "TopazVideoEnhanceV2", "TripoConversionNode",
        "TripoEditMultiviewNode", "TripoImageToModelNode", "TripoImageToModelNodeV2",
        "TripoImageToMultiviewNode", "TripoImportModelNode", "TripoMeshCompleteNode",
        "TripoMultiviewToModelNode", "TripoP1ImageToModelNode", "TripoP1MultiviewToModelNode",
        "TripoP1TextToModelNode", "TripoPSeriesImageToModelNode",
        "TripoPSeriesMultiviewToModelNode", "TripoPSeriesTextToModelNode", "TripoRetargetNode",
        "TripoRetopologyNode", "TripoRigCheckNode", "TripoRigNode", "TripoSegmentNode",
        "TripoSmartSegmentNode", "TripoTextToModelNode", "TripoTextToModelNodeV2",
        "TripoTextureNode", "TripoTextureNodeV2", "VeedCleanAudioNode", "VeedCleanVideoAudioNode",
        "VeedFabricNode", "VeedLipsyncNode", "VeedRemoveVideoBackgroundNode",
        "Veo3FirstLastFrameNode", "Veo3VideoGenerationNode", "Vidu2ImageToVideoNode",
        "Vidu2ReferenceVideoNode", "Vidu2StartEndToVideoNode", "Vidu2TextToVideoNode",
        "Vidu3ImageToVideoNode", "Vidu3StartEndToVideoNode", "Vidu3TextToVideoNode",
        "Vidu4ImageToVideoNode", "Vidu4ReferenceVideoNode", "ViduExtendVideoNode",
        "ViduImageToVideoNode", "ViduMultiFrameVideoNode", "ViduReferenceVideoNode",
        "ViduStartEndToVideoNode", "ViduTextToVideoNode", "Wan2ImageToVideoApi",
        "Wan2ReferenceVideoApi", "Wan2TextToVideoApi", "Wan2VideoContinuationApi",
        "Wan2VideoEditApi", "Wan3ImageToVideoApi", "Wan3ReferenceToVideoApi", "WanImageToImageApi",
        "WanImageToVideoApi", "WanReferenceVideoApi", "WanTextToImageApi", "WanTextToVideoApi",
        "WavespeedFlashVSRNode", "WavespeedImageUpscaleNode",
    ),
    "video": (
        "ARVideoI2V", "BlockSparseAttention", "CameraAngle", "ConcatenateVideo",
        "ConditioningSetAreaPercentageVideo", "ContextWindowsManual", "CosmosImageToVideoLatent",
        "CosmosPredict2ImageToVideoLatent", "CreateVideo", "EmptyARVideoLatent",
        "EmptyCosmosLatentVideo", "EmptyHunyuanLatentVideo", "EmptyHunyuanVideo15Latent",
        "EmptyLTXVLatentVideo", "EmptyMochiLatentVideo", "FrameInterpolate",
        "FrameInterpolationModelLoader", "GenerateTracks", "GetVideoComponents",
        "HunyuanImageToVideo", "HunyuanVideo15ImageToVideo", "HunyuanVideo15LatentUpscaleWithModel",
        "HunyuanVideo15SuperResolution", "ImageOnlyCheckpointLoader", "ImageOnlyCheckpointSave",
        "Kandinsky5ImageToVideo", "LTXVContextWindows", "LTXVImgToVideo", "LTXVImgToVideoInplace",
        "LatentUpscaleModelLoader", "LoadVideo", "LoadVideoDataSetFromFolder",
        "LoadVideoTextDataSetFromFolder", "MiniMaxH3ImageToVideo", "MiniMaxH3ReferenceToVideo",
        "NormalizeVideoLatentStart", "OpticalFlowLoader", "ReplaceVideoLatentFrames",
        "SAM3_VideoTrack", "SCAIL2ColoredMask", "SVD_img2vid_Conditioning", "SamplerARVideo",
        "SaveVideo", "SaveWEBM", "SeedVR2Conditioning", "SeedVR2PostProcessing",
        "SeedVR2Preprocess", "SeedVR2ProgressiveSampler", "SeedVR2TemporalChunk",
        "SeedVR2TemporalMerge", "ShuffleVideoDataset", "ShuffleVideoTextDataset",
        "TextEncodeHunyuanVideo_ImageToVideo", "TrimVideoLatent", "UNetTemporalAttentionMultiply",
        "VOIDInpaintConditioning", "VOIDQuadmaskPreprocess", "VOIDSampler", "VOIDWarpedNoise",
        "VOIDWarpedNoiseSource", "Video Slice", "VideoCrop", "VideoFrameSample",
        "VideoLinearCFGGuidance", "VideoRandomTemporalCrop", "VideoTemporalCrop",
        "VideoTriangleCFGGuidance", "VideoTrim", "Wan22FunControlToVideo",
        "Wan22ImageToVideoLatent", "WanAnimate2ToVideo", "WanAnimateToVideo",
        "WanCameraImageToVideo", "WanContextWindowsManual", "WanDancerVideo",
        "WanFirstLastFrameToVideo", "WanFunControlToVideo", "WanFunInpaintToVideo",
        "WanHuMoImageToVideo", "WanImageToVideo", "WanInfiniteTalkToVideo", "WanMoveTrackToVideo",
        "WanPhantomSubjectToVideo", "WanSCAILToVideo", "WanSoundImageToVideo",
        "WanSoundImageToVideoExtend", "WanTrackToVideo", "WanVaceToVideo",
    ),
    "3D": (
        "ApplyTextureToMesh", "BakeAmbientOcclusion", "BakeNormalMapFromMesh",
        "BakeTextureFromVoxel", "BuildPoseFile", "CreateCameraInfo", "DA3GeometryToMesh",
        "DA3Inference", "DA3Render", "DecimateMesh", "EmptyLatentHunyuan3Dv2",
        "EmptyTrellis2LatentStructure", "File3DToSplat", "FillHoles", "Get3DComponents",
        "GetMeshInfo", "GetSplatCount", "Hunyuan3Dv2Conditioning",
        "Hunyuan3Dv2ConditioningMultiView", "Load3D", "Load3DAdvanced", "LoadDA3Model",
        "LoadMoGeModel", "MergeMeshes", "MergeSplat", "MeshSmoothNormals", "MeshTextureToImage",
        "MeshToFile3D", "MoGeGeometryToFOV", "MoGeInference", "MoGePanoramaInference",
        "MoGePointMapToMesh", "MoGeRender", "PaintMesh", "Pixal3DConditioning",
        "Pixal3DMultiViewConditioning", "Preview3D", "Preview3DAdvanced", "PreviewGaussianSplat",
        "PreviewPointCloud", "RemeshMesh", "RenderMesh", "RenderSplat", "RenderUVAtlas",
        "RotateMesh", "SAM3DBody_FaceExpression", "SAM3DBody_Loader", "SAM3DBody_Predict",
        "SAM3DBody_Render", "SAM3DBody_Smooth", "SV3D_Conditioning", "Save3DAdvanced", "SaveGLB",
        "SaveGaussianSplat", "SavePointCloud", "SplatToFile3D", "SplatToMesh",
        "StableZero123_Conditioning", "StableZero123_Conditioning_Batched", "TransformSplat",
        "Trellis2Conditioning", "Trellis2ShapeStage", "Trellis2TextureStage",
        "Trellis2UpsampleStage", "TripoSplatConditioning", "TripoSplatPreprocessImage",
        "TripoSplatSamplingPreview", "UnwrapMesh", "VAEDecodeHunyuan3D", "VAEDecodeTripoSplat",
        "VaeDecodeShapeTrellis", "VaeDecodeStructureTrellis2", "VaeDecodeTextureTrellis",
        "VoxelToMesh", "VoxelToMeshBasic", "WeldVertices",
    ),
    "audio": (
        "AudioAdjustVolume", "AudioConcat", "AudioEncoderEncode", "AudioEncoderLoader",
        "AudioEqualizer3Band", "AudioMerge", "ConditioningStableAudio",
        "EmptyAceStep1.5LatentAudio", "EmptyAceStepLatentAudio", "EmptyAudio", "EmptyLatentAudio",
        "EmptyMiniMaxMusic3LatentAudio", "EmptyYuE2LatentAudio", "GetAudioLatentSize",
        "JoinAudioChannels", "LTXVAudioVAEDecode", "LTXVAudioVAEEncode", "LTXVAudioVAELoader",
        "LTXVEmptyLatentAudio", "LTXVReferenceAudio", "LoadAudio", "MiniMaxMusic3TextEncode",
        "PreviewAudio", "RecordAudio", "ReferenceTimbreAudio", "SaveAudio", "SaveAudioAdvanced",
        "SaveAudioMP3", "SaveAudioOpus", "SheetSage2AudioToABC", "SplitAudioChannels",
        "TextEncodeAceStepAudio", "TextEncodeAceStepAudio1.5", "TrimAudioDuration",
        "VAEDecodeAudio", "VAEDecodeAudioTiled", "VAEEncodeAudio", "WanDancerEncodeAudio",
        "YuE2GenerateABC", "YuE2GenerateMusic",
    ),
    "LTX-Video": (
        "GetICLoRAParameters", "LTXAVTextEncoderLoader", "LTXVAddGeneratedKeyframes",
        "LTXVAddGuide", "LTXVAddLatentGuide", "LTXVConcatAVLatent", "LTXVConditioning",
        "LTXVCropGuides", "LTXVDualCFGGuider", "LTXVDurationPredictor", "LTXVFreezeLatent",
        "LTXVGeneratedKeyframesToGuides", "LTXVLatentUpsampler", "LTXVModalityGuidance",
        "LTXVPreprocess", "LTXVScheduler", "LTXVSeparateAVLatent", "LTXVSeparateGeneratedKeyframes",
        "LTXVSpatioTemporalGuidance", "ModelMergeLTXV", "ModelSamplingLTXV",
        "TextGenerateLTX2Prompt",
    ),
    "Flux": (
        "CLIPTextEncodeFlux", "ChromaRadianceOptions", "EmptyChromaRadianceLatentImage",
        "EmptyFlux2LatentImage", "Flux2Scheduler", "Flux3LayoutPrompt", "FluxDisableGuidance",
        "FluxGuidance", "FluxKVCache", "FluxKontextImageScale",
        "FluxKontextMultiReferenceLatentMethod", "ModelMergeFlux1", "ModelSamplingFlux",
        "USOStyleReference",
    ),
    "SD3": (
        "CLIPTextEncodeSD3", "ControlNetApplySD3", "EmptySD3LatentImage", "ModelMergeSD35_Large",
        "ModelMergeSD3_2B", "ModelSamplingSD3", "SkipLayerGuidanceDiT",
        "SkipLayerGuidanceDiTSimple", "SkipLayerGuidanceSD3", "TripleCLIPLoader",
    ),
    "Wan": (
        "ModelMergeWAN2_1", "WanAnimate2Cache", "WanCameraEmbedding", "WanDancerPadKeyframes",
        "WanDancerPadKeyframesList", "WanMoveConcatTrack", "WanMoveTracksFromCoords",
        "WanMoveVisualizeTracks", "WanUni3CControlnetApply", "wanBlockSwap",
    ),
    "Qwen-Image": (
        "EmptyQwenImageLayeredLatentImage", "ModelMergeQwenImage", "ModelPatchLoader",
        "QwenImage21Cache", "QwenImageDiffsynthControlnet", "TextEncodeQwenImage21",
        "TextEncodeQwenImageEdit", "TextEncodeQwenImageEditPlus",
    ),
    "HiDream": (
        "CLIPTextEncodeHiDream", "EmptyHiDreamO1LatentImage", "HiDreamO1PatchSeamSmoothing",
        "HiDreamO1ReferenceImages", "QuadrupleCLIPLoader",
    ),
    "Stable Cascade": (
        "ModelSamplingStableCascade", "StableCascade_EmptyLatentImage",
        "StableCascade_StageB_Conditioning", "StableCascade_StageC_VAEEncode",
        "StableCascade_SuperResolutionControlnet",
    ),
    "Cosmos": (
        "ModelMergeCosmos14B", "ModelMergeCosmos7B", "ModelMergeCosmosPredict2_14B",
        "ModelMergeCosmosPredict2_2B",
    ),
    "MOSS-Image": (
        "MOSSImageControl", "MOSSImageLayoutPrompt", "ModelMergeMOSSImage",
        "TextEncodeMOSSImageEdit",
    ),
    "MediaPipe face": (
        "LoadMediaPipeFaceLandmarker", "MediaPipeFaceLandmarker", "MediaPipeFaceMask",
        "MediaPipeFaceMeshVisualize",
    ),
    "MiniMax H3": (
        "EmptyMiniMaxH3LatentAV", "MiniMaxH3AddGuide", "MiniMaxH3FunControlNetApply",
        "MiniMaxH3SigmaShift",
    ),
    "Hunyuan": (
        "CLIPTextEncodeHunyuanDiT", "EmptyHunyuanImageLatent", "HunyuanRefinerLatent",
    ),
    "SAM 3 segmentation": (
        "SAM3_Detect", "SAM3_TrackPreview", "SAM3_TrackToMask",
    ),
    "SDPose": (
        "SDPoseDrawKeypoints", "SDPoseFaceBBoxes", "SDPoseKeypointExtractor",
    ),
    "AuraFlow": (
        "ModelMergeAuraflow", "ModelSamplingAuraFlow",
    ),
    "Lumina": (
        "CLIPTextEncodeLumina2", "RenormCFG",
    ),
    "Z-Image": (
        "TextEncodeZImageOmni", "ZImageFunControlnet",
    ),
    "background-removal models": (
        "LoadBackgroundRemovalModel", "RemoveBackground",
    ),
    "edit models (Flux Kontext, Qwen-Image Edit)": (
        "ReferenceLatent", "ReferenceMultiLatent",
    ),
    "Anima": (
        "AnimaLLLiteApply",
    ),
    "Bernini": (
        "BerniniConditioning",
    ),
    "Boogu": (
        "TextEncodeBooguEdit",
    ),
    "ComfyUI-Manager": (
        "TerminalLog",
    ),
    "DiT (RoPE) models": (
        "ScaleROPE",
    ),
    "Fibo": (
        "TextEncodeFibo2",
    ),
    "JoyImage": (
        "TextEncodeJoyImageEdit",
    ),
    "Kandinsky": (
        "CLIPTextEncodeKandinsky5",
    ),
    "Krea 2": (
        "ModelMergeKrea2",
    ),
    "LLM text generation": (
        "TextGenerate",
    ),
    "Lotus": (
        "LotusConditioning",
    ),
    "MageFlow": (
        "TextEncodeMageFlowEdit",
    ),
    "Marigold": (
        "MarigoldV2PostProcess",
    ),
    "Ming": (
        "TextEncodeMingImageEdit",
    ),
    "Mochi": (
        "ModelMergeMochiPreview",
    ),
    "PiD": (
        "PiDConditioning",
    ),
    "PixArt": (
        "CLIPTextEncodePixArtAlpha",
    ),
    "RT-DETR detection": (
        "RTDETR_detect",
    ),
    "SUPIR": (
        "SUPIRApply",
    ),
    "SenseNova": (
        "SenseNovaSamplingOptions",
    ),
    "T5-encoder models": (
        "T5TokenizerOptions",
    ),
}


def other_family(name: str) -> str | None:
    """The model family a core node belongs to when it is not Weft's, else None."""
    for family, names in OTHER_FAMILIES.items():
        if name in names:
            return family
    return None


def comfyui_core_node_names() -> list[str]:
    """ComfyUI's current core node names, read from the installed ``comfyui-embedded-docs``
    package (a development dependency: ``make test`` installs it)."""
    from importlib import resources

    try:
        root = resources.files("comfyui_embedded_docs") / "docs"
    except ModuleNotFoundError as error:
        raise RuntimeError("comfyui-embedded-docs is not installed: install requirements-dev.txt "
                           "(`make test` does)") from error
    return sorted(entry.name for entry in root.iterdir() if entry.is_dir())
